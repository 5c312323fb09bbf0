# Runs in the registry image's root file system (chroot) after debootstrap.
set -eu
mkdir -p /var/lib/registry
test -x /usr/bin/docker-registry
