// Checks PromQL expressions (a dashboard's queries, alerting rules) against a scrape of
// real /metrics: each expression must parse, every metric it selects must be one the
// scrape exposes, and it must evaluate without error over the scrape stored three times,
// two minutes apart (a [5m] range is open at its start, so rate() and increase() over
// it then see two samples).
//
//	promql-check -metrics scrape.txt -content-type 'application/openmetrics-text; version=1.0.0' < exprs.json
//
// exprs.json is a JSON array of {"name": ..., "expr": ...}; one JSON answer per line:
// {"name", "error", "unknownMetrics", "series", "values"}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
)

type query struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
}

type answer struct {
	Name           string     `json:"name"`
	Error          string     `json:"error,omitempty"`
	UnknownMetrics []string   `json:"unknownMetrics,omitempty"`
	Series         int        `json:"series"`
	Values         []*float64 `json:"values"` // null for NaN, which JSON cannot carry
}

type sample struct {
	labels labels.Labels
	value  float64
}

func main() {
	metricsFile := flag.String("metrics", "", "a scrape of /metrics")
	contentType := flag.String("content-type", "application/openmetrics-text; version=1.0.0", "the scrape's Content-Type")
	flag.Parse()
	if err := run(*metricsFile, *contentType); err != nil {
		fmt.Fprintln(os.Stderr, "promql-check:", err)
		os.Exit(1)
	}
}

func run(metricsFile, contentType string) error {
	scrape, err := os.ReadFile(metricsFile)
	if err != nil {
		return err
	}
	samples, names, err := parse(scrape, contentType)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", metricsFile, err)
	}
	var queries []query
	if err := json.NewDecoder(os.Stdin).Decode(&queries); err != nil {
		return fmt.Errorf("reading the expressions: %w", err)
	}

	dir, err := os.MkdirTemp("", "promql-check")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := tsdb.Open(dir, nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	end := time.Now().Truncate(time.Second)
	ctx := context.Background()
	app := db.Appender(ctx)
	for _, at := range []time.Time{end.Add(-4 * time.Minute), end.Add(-2 * time.Minute), end} {
		for _, s := range samples {
			if _, err := app.Append(0, s.labels, at.UnixMilli(), s.value); err != nil {
				return fmt.Errorf("storing %s: %w", s.labels, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		return err
	}

	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples:    10_000_000,
		Timeout:       time.Minute,
		LookbackDelta: 5 * time.Minute,
	})
	out := json.NewEncoder(os.Stdout)
	for _, q := range queries {
		if err := out.Encode(check(ctx, engine, db, names, q, end)); err != nil {
			return err
		}
	}
	return nil
}

// parse reads the scrape as Prometheus would and returns its samples and every metric
// name it exposes, those of families without samples yet included.
func parse(scrape []byte, contentType string) ([]sample, map[string]bool, error) {
	p, err := textparse.New(scrape, contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if p == nil {
		return nil, nil, fmt.Errorf("no parser for %q: %v", contentType, err)
	}
	names := map[string]bool{}
	var samples []sample
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch entry {
		case textparse.EntryType:
			family, kind := p.Type()
			for _, suffix := range suffixes(string(kind)) {
				names[string(family)+suffix] = true
			}
		case textparse.EntrySeries:
			var lset labels.Labels
			p.Labels(&lset)
			_, _, value := p.Series()
			names[lset.Get(labels.MetricName)] = true
			samples = append(samples, sample{labels: lset, value: value})
		}
	}
	return samples, names, nil
}

// The names a family of this type exposes in OpenMetrics and in the classic text format.
func suffixes(kind string) []string {
	switch kind {
	case "counter":
		return []string{"", "_total", "_created"}
	case "histogram":
		return []string{"_bucket", "_sum", "_count", "_created"}
	case "summary":
		return []string{"", "_sum", "_count", "_created"}
	case "info":
		return []string{"_info"}
	default:
		return []string{""}
	}
}

func check(ctx context.Context, engine *promql.Engine, db *tsdb.DB, names map[string]bool, q query, at time.Time) answer {
	result := answer{Name: q.Name}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q.Expr)
	if err != nil {
		result.Error = err.Error()
		return result
	}
	unknown := map[string]bool{}
	for _, matchers := range parser.ExtractSelectors(expr) {
		for _, m := range matchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual && !names[m.Value] {
				unknown[m.Value] = true
			}
		}
	}
	for name := range unknown {
		result.UnknownMetrics = append(result.UnknownMetrics, name)
	}
	sort.Strings(result.UnknownMetrics)
	instant, err := engine.NewInstantQuery(ctx, db, nil, q.Expr, at)
	if err != nil {
		result.Error = err.Error()
		return result
	}
	defer instant.Close()
	evaluated := instant.Exec(ctx)
	if evaluated.Err != nil {
		result.Error = evaluated.Err.Error()
		return result
	}
	switch value := evaluated.Value.(type) {
	case promql.Vector:
		result.Series = len(value)
		for _, s := range value {
			result.Values = append(result.Values, number(s.F))
		}
	case promql.Matrix:
		result.Series = len(value)
	case promql.Scalar:
		result.Series = 1
		result.Values = []*float64{number(value.V)}
	default:
		result.Error = strings.TrimSpace(fmt.Sprintf("unexpected result type %T", value))
	}
	return result
}

// number is nil for NaN (a quantile of no observations), which JSON cannot carry.
func number(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}
