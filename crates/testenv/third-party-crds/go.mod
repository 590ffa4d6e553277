// The projects whose CRDs the chart and the kustomize components render objects of
// (cert-manager's Certificate, Gateway API's HTTPRoute and BackendTLSPolicy, the
// Prometheus Operator's ServiceMonitor and PrometheusRule), pinned with their checksums.
// No Go code uses them: make takes the CRD files named in crds.txt from each module,
// and the tests install them on the test control plane.
module okta-rbac-operator/testenv/third-party-crds

go 1.26

require (
	github.com/cert-manager/cert-manager v1.21.2
	github.com/prometheus-operator/prometheus-operator v0.85.0
	sigs.k8s.io/gateway-api v1.7.0
)
