"""Deployment: export to a hub folder, push, the ``Pretrained`` inference interface, ONNX."""
