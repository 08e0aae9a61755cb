"""Studies (Lucic et al. 2018; Kurach et al. 2019): score distributions over hyper-parameter draws and seeds."""
