"""The quickstart data generator's modules (stdlib only); run ../generate.py, not these."""
