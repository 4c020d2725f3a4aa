"""kit.results.timed_on: every speed figure names the machine it was measured on (notebook 05 prints it)."""
from kit.results import timed_on


def test_timed_on_names_the_cpu_and_its_instruction_sets_or_says_what_is_not_recorded():
    notebook_04 = {"device": "cpu", "cpu": {"model": "Intel(R) Xeon(R) Processor @ 2.80GHz",
                                            "instruction_sets": ["avx2", "avx512f", "avx512_vnni"]}}
    assert timed_on(notebook_04) == "Intel(R) Xeon(R) Processor @ 2.80GHz (avx2, avx512f, avx512_vnni)"
    assert timed_on({"cpu": {"model": "Some CPU", "instruction_sets": []}}) == \
        "Some CPU (no AVX2, AVX-512 or AMX)"
    es_local = {"machine": "x86_64, 2 CPU cores, no GPU", "device": "cpu", "cpu_native_bf16": True}
    assert timed_on(es_local) == "x86_64, 2 CPU cores, no GPU, with native bf16: its CPU model is not recorded"
    assert timed_on({"device": "cpu", "threads": 2}) == "a machine: its CPU model is not recorded"
    gpu = {**notebook_04, "device": "cuda"}
    assert timed_on(gpu) == "cuda (CPU: Intel(R) Xeon(R) Processor @ 2.80GHz (avx2, avx512f, avx512_vnni))"
    assert timed_on(None) == "no benchmark.json (notebook 04 writes it)"
