"""PyInstaller hook for torchvision, replacing pyinstaller-hooks-contrib's.

torchvision's C++ operators (``nms``, which MTCNN calls, and the image codecs) live in
shared libraries that torchvision loads with ``torch.ops.load_library`` from its own folder,
so static analysis never sees them. The contributed hook names them as the module
``torchvision._C``; torchvision 0.29 renamed them ``_C_stable.so`` and ``image_stable.so``,
which are not modules at all. Without them the bundle starts, and MTCNN fails with
"operator torchvision::nms does not exist" (``kiosk --self-test`` reports it as
"FAIL MTCNN"). This hook copies every shared library in torchvision's top folder, whatever
its name, to the same place in the bundle.
"""

from pathlib import Path

from PyInstaller.utils.hooks import get_package_paths

_, _package = get_package_paths("torchvision")
binaries = [
    (str(path), "torchvision")
    for pattern in ("*.so", "*.so.*", "*.pyd", "*.dll", "*.dylib")
    for path in sorted(Path(_package).glob(pattern))
]
hiddenimports = ["torchvision._C"] if list(Path(_package).glob("_C.*")) else []
# Source files too: TorchScript (used by some torchvision ops) reads the Python source.
module_collection_mode = "pyz+py"
