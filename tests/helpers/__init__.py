"""Test support shared by the test files and the benchmark scripts: importable as ``helpers`` because
``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject's pytest options; scripts insert it).

Not ``tests.helpers``: torch-fidelity installs a top-level ``tests`` package of its own, which would
shadow this folder as a namespace package.
"""
