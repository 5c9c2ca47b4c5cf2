"""Precision ``auto`` is the device's fastest arithmetic: bf16 on CPUs that compute it natively,
fp32 on the others (backend/runtime.py), and a transfer that names ONNX Runtime runs fp32."""

from __future__ import annotations

import pytest
import torch

from backend.runtime import (CPU_BF16_ENV, cpu_has_native_bf16, cpuinfo_says_bf16,
                             resolve_precision)
from backend.transfer.inference import choose_backend, transfer_runtime

EPYC = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
OLD_XEON = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
SAPPHIRE = "flags\t\t: avx512f amx_tile amx_bf16 amx_int8\n"
NEOVERSE = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
CORTEX_A72 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"


@pytest.mark.parametrize("text,native", [(EPYC, True), (OLD_XEON, False), (SAPPHIRE, True),
                                         (NEOVERSE, True), (CORTEX_A72, False), ("", False)])
def test_native_bf16_is_read_from_the_cpus_flags(text, native):
    # plain AVX512 (OLD_XEON) emulates bf16, slower than fp32: not native
    assert cpuinfo_says_bf16(text) is native


@pytest.mark.parametrize("forced,precision", [("1", "bf16"), ("0", "fp32")])
def test_auto_on_the_cpu_follows_native_bf16(monkeypatch, forced, precision):
    monkeypatch.setenv(CPU_BF16_ENV, forced)
    assert cpu_has_native_bf16() is (forced == "1")
    assert resolve_precision("auto", torch.device("cpu")) == precision
    for explicit in ("fp32", "bf16"):  # a named precision is what it says, on any CPU
        assert resolve_precision(explicit, torch.device("cpu")) == explicit


@pytest.mark.parametrize("forced,cpu_backend,expected", [
    ("1", "auto", ("bf16", "torch")),   # bf16 autocast in PyTorch: faster than ONNX fp32
    ("1", "onnx", ("fp32", "onnx")),    # ONNX Runtime named: its files are fp32
    ("1", "torch", ("bf16", "torch")),
    ("0", "auto", ("fp32", "onnx")),    # no native bf16: as before, ONNX Runtime at fp32
    ("0", "torch", ("fp32", "torch")),
])
def test_a_transfer_on_the_cpu_runs_the_fastest_engine(monkeypatch, forced, cpu_backend,
                                                       expected):
    monkeypatch.setenv(CPU_BF16_ENV, forced)
    monkeypatch.delenv("EVERYBODY_DANCE_CPU_BACKEND", raising=False)
    runtime = transfer_runtime("cpu", "auto", cpu_backend)
    assert (runtime.precision, choose_backend(cpu_backend, runtime)) == expected


def test_the_environment_naming_onnx_means_fp32_too(monkeypatch):
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    monkeypatch.setenv("EVERYBODY_DANCE_CPU_BACKEND", "onnx")
    assert transfer_runtime("cpu", "auto", "auto").precision == "fp32"
    assert transfer_runtime("cpu", "bf16", "auto").precision == "bf16"  # named: kept
