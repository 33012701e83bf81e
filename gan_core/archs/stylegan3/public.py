"""placeholder"""
from ...registry import PublicFormat
def read(obj, name):
    return None
FORMAT = PublicFormat("NVIDIA StyleGAN3 network pickle", read, container="nvidia_pickle")
