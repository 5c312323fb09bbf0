// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
	github.com/example/dep v1.2.3
	k8s.io/api v0.0.0
	k8s.io/client-go v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go // the client
)

replace github.com/example/dep v1.2.3 => github.com/fork/dep v1.2.4

replace go.etcd.io/etcd/api/v3 => ../api
