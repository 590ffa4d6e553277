// argocd-health ARGOCD_CM_YAML reads Kubernetes objects as JSON, one per line, and prints
// for each the health Argo CD reports for it: {"status": "Healthy", "message": "..."}.
//
// The health comes from Argo CD's own code (util/lua), given the resource customizations
// that the argocd-cm ConfigMap in ARGOCD_CM_YAML holds, the way Argo CD reads the keys
// `resource.customizations.health.<group>_<Kind>` and
// `resource.customizations.useOpenLibs.<group>_<Kind>`.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
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

// overrides turns argocd-cm's per-kind keys into Argo CD's resource overrides, keyed
// `<group>/<Kind>` as Argo CD keys them.
func overrides(data map[string]string) lua.ResourceHealthOverrides {
	result := lua.ResourceHealthOverrides{}
	for key, value := range data {
		for prefix, set := range map[string]func(*v1alpha1.ResourceOverride, string){
			"resource.customizations.health.":      func(o *v1alpha1.ResourceOverride, v string) { o.HealthLua = v },
			"resource.customizations.useOpenLibs.": func(o *v1alpha1.ResourceOverride, v string) { o.UseOpenLibs = v == "true" },
		} {
			groupKind, found := strings.CutPrefix(key, prefix)
			if !found {
				continue
			}
			groupKind = strings.Replace(groupKind, "_", "/", 1)
			override := result[groupKind]
			set(&override, value)
			result[groupKind] = override
		}
	}
	return result
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
	health := overrides(cm.Data)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		object := &unstructured.Unstructured{}
		var result answer
		if err := object.UnmarshalJSON(in.Bytes()); err != nil {
			result.Error = err.Error()
		} else if status, err := health.GetResourceHealth(object); err != nil {
			result.Error = err.Error()
		} else if status == nil {
			result.Error = "argocd-cm has no health check for " + object.GroupVersionKind().GroupKind().String()
		} else {
			result.Status = string(status.Status)
			result.Message = status.Message
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
