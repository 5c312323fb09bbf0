# Runs in the kube-proxy root file system (chroot) after debootstrap.
set -eu
for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
	ln -sf iptables-wrapper "/usr/sbin/$cmd"
done
