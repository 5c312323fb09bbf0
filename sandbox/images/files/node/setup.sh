# Runs in the node's root file system (chroot) after debootstrap.
set -eu
# Start only what a node needs: systemd-in-a-container, containerd, kubelet.
# The units to start are linked in by the image build.
rm -f /lib/systemd/system/multi-user.target.wants/* \
	/etc/systemd/system/*.wants/* \
	/lib/systemd/system/local-fs.target.wants/* \
	/lib/systemd/system/sockets.target.wants/*udev* \
	/lib/systemd/system/sockets.target.wants/*initctl* \
	/lib/systemd/system/basic.target.wants/*
rm -f /lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
ln -sf /dev/null /etc/systemd/system/systemd-binfmt.service
echo ReadKMsg=no >>/etc/systemd/journald.conf
ln -sf /lib/systemd/systemd /sbin/init
mkdir -p /etc/kubernetes/manifests /etc/cni/net.d /kind/manifests /var/lib/kubelet
