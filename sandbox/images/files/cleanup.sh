# Runs last in every root file system (chroot): drop what Docker provides
# at run time and what only the build needed.
set -eu
rm -f /etc/resolv.conf /etc/hostname
if [ -f /etc/machine-id ]; then : >/etc/machine-id; fi
rm -f /var/lib/dbus/machine-id
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin \
	/var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
