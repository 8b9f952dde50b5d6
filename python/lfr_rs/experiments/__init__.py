"""Experiments: train configured methods, evaluate them, report. Three views of
one workflow, the top layer of the package (nothing below imports it):

* :mod:`~lfr_rs.experiments.table1`: the paper's Table 1 (presets quick, reference, paper);
* :mod:`~lfr_rs.experiments.frontier`: strong robust accuracy against training cost;
* :mod:`~lfr_rs.experiments.sweep`: LFR over lambdas (Fig. 3).

:mod:`~lfr_rs.experiments.common` holds what they share (settings files, data,
timing calibration, the machine's description).
"""
