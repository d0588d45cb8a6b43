"""Side-by-side benchmarks of jupyter_interp against its peers (not timed tests).

``bench/run`` (``python -m bench``) runs them all, each in its own process;
``python -m bench.<name> [--smoke]`` runs one:

* ``core``: the sans-I/O codecs, connection and tracker, messages per second (target 6);
* ``latency``: execute round trips against jupyter_client/ZMQ (async and blocking), a
  blocking raw-socket WebSocket client and websockets (target 1);
* ``session_start``: cold starts against the raw REST+WebSocket path, and
  ``KernelPool`` (target 2);
* ``transfer``: uploads and downloads against the Contents API, and 1 GiB (target 3);
* ``output``: client memory while 10 MB is printed (target 4);
* ``scale``: 100 concurrent sessions on one Client (target 5);
* ``sim_scale``: 1k/5k/10k sessions from one Client and through the provider, against
  ``sim_server`` (simulated kernels; target 8).

Every benchmark starts its own servers and kernels on 127.0.0.1, runs the contenders
interleaved in one process tree, prints one ``figure`` line per number and one
``PASS``/``FAIL``/``NOT-MEASURED`` line per target, and cleans up. The method and the
latest figures are in ``docs/performance.md``.
"""
