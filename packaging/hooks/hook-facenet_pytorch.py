"""PyInstaller hook for facenet-pytorch: MTCNN's weights, and the folder they are found from.

MTCNN loads its three networks' weights (``data/pnet.pt``, ``rnet.pt``, ``onet.pt``, 2 MB,
shipped inside the package) from ``os.path.dirname(__file__) + '/../data/pnet.pt'``, where
``__file__`` is ``facenet_pytorch/models/mtcnn.py``. Copying the data files is not enough:
with the modules only in the bundle's archive, ``facenet_pytorch/models/`` does not exist on
disk and the path through ``models/..`` cannot resolve ("No such file or directory", the
first bundle's ``kiosk --self-test`` said so). Collecting the package's modules as source
files as well ("pyz+py") makes that folder real.
"""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("facenet_pytorch", includes=["data/*.pt"])
module_collection_mode = "pyz+py"
