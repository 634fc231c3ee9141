"""CI/CD pipelines: ``raymlops pipeline run FILE`` runs data → train/tune → gate → deploy →
rollout on the cluster, reuses the stages whose result already exists, and ends with an exit
code and a JSON summary that say how it ended."""
