package constants

const (
	// DefaultEtcdVersion indicates the default etcd version that kubeadm uses
	DefaultEtcdVersion = "3.6.5-0"
	// CoreDNSVersion is the version of CoreDNS to be deployed if it is used
	CoreDNSVersion = "v1.12.1"
	// PauseVersion indicates the default pause image version for kubeadm
	PauseVersion = "3.10.1"
)
