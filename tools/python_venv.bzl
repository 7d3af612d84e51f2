"""Registers the project's virtualenv (<workspace>/.venv) as the Python toolchain.

The interpreter path must be absolute for Bazel's py_runtime, so it is computed
here from the workspace root instead of being committed.
"""

def _python_venv_impl(rctx):
    root = str(rctx.path(Label("//:WORKSPACE")).dirname)
    interpreter = root + "/.venv/bin/python3"
    rctx.file("BUILD.bazel", """
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

py_runtime(
    name = "py3_runtime",
    interpreter_path = "{interpreter}",
    python_version = "PY3",
    stub_shebang = "#!{interpreter}",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":py3_runtime",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
""".format(interpreter = interpreter))

python_venv = repository_rule(
    implementation = _python_venv_impl,
    local = True,
)
