# Runs in the engine's root file system (chroot) after debootstrap.
set -eu
mkdir -p /var/lib/docker
