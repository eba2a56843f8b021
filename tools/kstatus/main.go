// Command kstatus classifies Kubernetes objects with kstatus
// (sigs.k8s.io/cli-utils/pkg/kstatus/status), the library that Flux and kubectl-based tools use
// to decide whether a resource is Current, InProgress, Failed, ... It lets the project prove how
// tools of that kind read its custom resources' statuses.
//
// Input: a JSON array of full objects (apiVersion, kind, metadata, status) on stdin.
// Output: one JSON line per object, {"name": ..., "status": ..., "message": ...}.
// Any error exits non-zero with a message on stderr.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run() error {
	var raws []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&raws); err != nil {
		return fmt.Errorf("reading a JSON array of objects from stdin: %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	for i, raw := range raws {
		// UnmarshalJSON decodes as the API machinery does (integers as int64), so
		// metadata.generation and status.observedGeneration compare as in a cluster.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
		res, err := status.Compute(u)
		if err != nil {
			return fmt.Errorf("object %d (%q): %w", i, u.GetName(), err)
		}
		out := struct {
			Name    string `json:"name"`
			Status  string `json:"status"`
			Message string `json:"message"`
		}{u.GetName(), res.Status.String(), res.Message}
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("writing stdout: %w", err)
		}
	}
	return nil
}
