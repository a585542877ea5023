"""One module per command: read artifacts -> call the libraries -> write artifacts.

| command | stage module | main function |
|---|---|---|
| ``babelmoe split`` | ``stages.split`` | ``run_split`` |
| ``babelmoe profile`` | ``stages.profile`` | ``run_profile`` |
| ``babelmoe analyse`` | ``stages.analyse`` | ``run_analysis`` |
| ``babelmoe diff`` | ``stages.diff`` | ``run_diff`` |
| ``babelmoe report`` | ``stages.report`` | ``build_report`` |
| ``babelmoe prune`` | ``stages.prune`` | ``run_prune`` |
| ``babelmoe evaluate`` | ``stages.evaluate`` | ``run_evaluate`` |
| ``babelmoe sweep`` | ``stages.sweep`` | ``run_sweep`` |
| ``babelmoe languages`` | ``stages.languages`` | |
| ``babelmoe run`` | ``stages.run`` | ``run_pipeline`` |
| ``babelmoe study`` | ``stages.study`` | ``run_study`` |

Every runner has one shape, ``run_<stage>(config, run_dir, *, model=..., force=False, ...)``:
the model, where the stage needs one, as ``model: LoadedModel | ModelSpec`` (resolved by
``models.loading.as_loaded``).

``stages.heldout`` (the held-out documents of a run) serves evaluate and sweep. ``stages.config``
holds the stages' configs (importable without torch, for ``--help``); ``stages.progress`` the
main job's plan of stages and its estimate of time left. Dependency rule:
``commands`` -> ``stages`` -> libraries (experts, profile, analysis, prune, evaluate, plots,
corpus, models), never back; no library imports a stage.
"""
