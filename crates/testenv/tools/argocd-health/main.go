// argocd-health ARGOCD_CM_YAML reads Kubernetes objects as JSON, one per line, and prints
// for each the health Argo CD reports for it, by the health script that the argocd-cm
// ConfigMap in ARGOCD_CM_YAML holds for its kind:
// {"status": "Healthy", "message": "..."}.
//
// Like Argo CD for a script from argocd-cm: the object is the global `obj`, with numbers
// as the cluster cache holds them; the script runs with the package, base and table
// libraries and an os library of only `time` and `date`; it has one second; it must return
// a table whose status is Healthy, Progressing, Suspended, Degraded, Missing or Unknown,
// and anything else becomes Unknown.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type answer struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

type configMap struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

var validStatus = map[string]bool{
	"Healthy": true, "Progressing": true, "Suspended": true,
	"Degraded": true, "Missing": true, "Unknown": true,
}

// The argocd-cm key of a kind's health script: resource.customizations.health.<group>_<Kind>.
func healthKey(object *unstructured.Unstructured) string {
	gvk := object.GroupVersionKind()
	if gvk.Group == "" {
		return "resource.customizations.health." + gvk.Kind
	}
	return "resource.customizations.health." + gvk.Group + "_" + gvk.Kind
}

func osTime(l *lua.LState) int {
	l.Push(lua.LNumber(time.Now().Unix()))
	return 1
}

func osDate(l *lua.LState) int {
	l.Push(lua.LString(time.Now().UTC().Format(time.RFC3339)))
	return 1
}

func openLibraries(l *lua.LState) {
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	reducedOs := l.SetFuncs(l.NewTable(), map[string]lua.LGFunction{"time": osTime, "date": osDate})
	l.SetGlobal(lua.OsLibName, reducedOs)
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		l.Push(reducedOs)
		return 1
	})
}

func toLua(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []interface{}:
		list := l.CreateTable(len(v), 0)
		for _, item := range v {
			list.Append(toLua(l, item))
		}
		return list
	case map[string]interface{}:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}

func evaluate(script string, object *unstructured.Unstructured) answer {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	openLibraries(l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, object.Object))
	if err := l.DoString(script); err != nil {
		return answer{Error: err.Error()}
	}
	returned, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return answer{Error: fmt.Sprintf("expect table output from Lua script, not %s", l.Get(-1).Type())}
	}
	status := returned.RawGetString("status").String()
	message := ""
	if m, ok := returned.RawGetString("message").(lua.LString); ok {
		message = string(m)
	}
	if !validStatus[status] {
		return answer{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return answer{Status: status, Message: message}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health ARGOCD_CM_YAML < objects.jsonl")
		os.Exit(2)
	}
	text, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var cm configMap
	if err := yaml.Unmarshal(text, &cm); err != nil || cm.Metadata.Name != "argocd-cm" {
		fmt.Fprintf(os.Stderr, "%s is not the argocd-cm ConfigMap: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		object := &unstructured.Unstructured{}
		var result answer
		if err := object.UnmarshalJSON(in.Bytes()); err != nil {
			result.Error = err.Error()
		} else if script := strings.TrimSpace(cm.Data[healthKey(object)]); script == "" {
			result.Error = "argocd-cm has no " + healthKey(object)
		} else {
			result = evaluate(script, object)
		}
		if err := out.Encode(result); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
