"""The parts of chatalign.rollout.vllm_engine that need no vLLM: the line a start-up error is reduced to."""

from chatalign.rollout.vllm_engine import engine_error_line


def test_a_validation_error_gives_its_reason_not_the_class_name():
    exc = ValueError("1 validation error for ModelConfig\n  Value error, Model architectures ['FooLM'] are not "
                     "supported for now. Supported architectures: dict_keys(['A', 'B'])\n  For further information")
    assert engine_error_line(exc) == "Model architectures ['FooLM'] are not supported for now."


def test_another_error_gives_its_first_line_cut_to_300_characters():
    assert engine_error_line(RuntimeError("out of memory\nmore")) == "out of memory"
    long = engine_error_line(RuntimeError("x" * 400))
    assert len(long) == 300 and long.endswith("...")
    assert engine_error_line(RuntimeError("")) == "RuntimeError"
