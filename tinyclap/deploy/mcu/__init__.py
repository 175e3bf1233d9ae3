"""Students on a microcontroller: int8 LiteRT models, C arrays, a C log-mel frontend.

``tinyclap export STUDENT --out DIR --mcu`` writes ``DIR/mcu/`` with the layers
of this package:

* :mod:`~tinyclap.deploy.mcu.convert`: the student as a full-integer int8
  ``.tflite`` (litert-torch PT2E), calibrated on real clips;
* :mod:`~tinyclap.deploy.mcu.tflm`: TensorFlow Lite Micro's own interpreter
  (the ``tflite-micro`` package): peak tensor arena, int8 inference;
* :mod:`~tinyclap.deploy.mcu.c_arrays`: the model and the label table as C sources;
* :mod:`~tinyclap.deploy.mcu.frontend_c`: the dependency-free C99 log-mel frontend;
* :mod:`~tinyclap.deploy.mcu.main_cc`: ``main.cc``, the TFLM program (frontend -> model ->
  labels), and :mod:`~tinyclap.deploy.mcu.host_build`, which compiles and runs it on the
  host against TFLM built from source;
* :mod:`~tinyclap.deploy.mcu.report`: flash / RAM budgets, ``report.json`` and ``README.md``;
* :mod:`~tinyclap.deploy.mcu.export`: the whole export and its int8-vs-fp32 evaluation.

They need the ``mcu`` extra (``pip install tinyclap[mcu]``).
"""
