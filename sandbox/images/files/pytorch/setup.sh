# Runs in the PyTorch lesson image's root file system (chroot) after
# debootstrap: check that torch imports with the gloo backend that
# distributed training on CPU uses, and that the static busybox the
# training-operator image copies has the applets its init container runs,
# so that a broken image fails its build.
set -eu
python3 -c 'import numpy, torch, torch.distributed as d; assert d.is_gloo_available(), "no gloo"; print("torch", torch.__version__)'
for applet in sh nslookup seq sleep; do
	/bin/busybox --list | grep -qx "$applet"
done
