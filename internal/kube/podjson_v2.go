//go:build goexperiment.jsonv2

package kube

import (
	jsonv2 "encoding/json/v2"

	v1 "k8s.io/api/core/v1"
)

// decodePodFast decodes a Pod's JSON into pod with encoding/json/v2, as
// strictly as the API server (sigs.k8s.io/json's UnmarshalStrict): names
// matched case-sensitively, no unknown or duplicate field. It reports
// false on any failure, and the caller decodes again with
// sigs.k8s.io/json for the API server's message. Why: cold, v2 builds
// its decoder for the Pod's types in a third of sigs.k8s.io/json's time
// (3.6 ms here), and the encoder that records the pod (writeJSON, v2)
// shares what it built; `hull kube apply` pays it on the way to Running.
func decodePodFast(js []byte, pod *v1.Pod) bool {
	return jsonv2.Unmarshal(js, pod, jsonv2.RejectUnknownMembers(true)) == nil
}
