# Runs in the base image's root file system (chroot) after debootstrap.
set -eu
