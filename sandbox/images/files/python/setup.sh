# Runs in the python lesson image's root file system (chroot) after
# debootstrap: nothing to adjust beyond the packages, but check that the
# machine-learning stack imports, so a broken image fails its build.
set -eu
python3 -c 'import numpy, sklearn, flask; from sklearn.datasets import load_iris; load_iris()'
