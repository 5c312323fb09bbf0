# Runs in the workstation's root file system (chroot) after debootstrap.
set -eu
useradd --uid 1000 --user-group --create-home --shell /bin/bash learner
