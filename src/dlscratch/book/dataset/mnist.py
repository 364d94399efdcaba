"""The book's dataset/mnist.py: load_mnist reads MNIST through dlscratch.datasets.

The files are looked for, and downloaded if missing, where dlscratch keeps its data sets
($DLSCRATCH_DATA_DIR, else the user's cache folder), not in the book's dataset folder.
"""

from dlscratch.datasets import load_mnist

__all__ = ["img_dim", "img_size", "key_file", "load_mnist", "test_num", "train_num"]

key_file = {
    "train_img": "train-images-idx3-ubyte.gz",
    "train_label": "train-labels-idx1-ubyte.gz",
    "test_img": "t10k-images-idx3-ubyte.gz",
    "test_label": "t10k-labels-idx1-ubyte.gz",
}
train_num = 60000
test_num = 10000
img_dim = (1, 28, 28)
img_size = 784
