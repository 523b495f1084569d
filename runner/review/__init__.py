"""Review: what a director decides and compares. Which nodes wait behind an approval gate
or a pick (``gates``), and how two lockfiles differ, shot by shot (``lockdiff``). The review
file itself is read with the pipeline (:mod:`runner.pipeline.review_file`)."""
