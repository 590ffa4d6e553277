// Reads Kubernetes objects as JSON, one per line, and prints for each the status that
// kstatus (Flux's health checks, `flux ... --wait`, kustomize-controller's healthChecks)
// computes for it: {"status": "Current", "message": "..."}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type answer struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		object := &unstructured.Unstructured{}
		var result answer
		if err := object.UnmarshalJSON(in.Bytes()); err != nil {
			result.Error = err.Error()
		} else if computed, err := status.Compute(object); err != nil {
			result.Error = err.Error()
		} else {
			result.Status = computed.Status.String()
			result.Message = computed.Message
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
