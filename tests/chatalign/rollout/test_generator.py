"""Generators for model directories used one after another: the native engine keeps the last model while it is
asked for again, and loads it again once a caller closed it."""


def test_model_generators_keep_the_last_native_model_and_reload_it_once_closed(tiny_model_dir):
    from types import SimpleNamespace

    from chatalign.rollout.generator import ModelGenerators

    loads = []
    pool = ModelGenerators(SimpleNamespace(backend="native"), None,
                           lambda path: loads.append(path) or (object(), "tok"))
    first, _ = pool.open(str(tiny_model_dir))
    assert pool.open(str(tiny_model_dir))[0] is first and loads == [str(tiny_model_dir)]  # asked again: kept
    first.close()
    again, tok = pool.open(str(tiny_model_dir))
    assert again is not first and again.get_model() is not None and tok == "tok" and len(loads) == 2
    pool.close()
    assert pool.native is None
