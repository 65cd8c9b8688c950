"""`polyroute replay`: re-route logged traffic (or an evaluation set) through other
policies without calling any model, and estimate each policy's cost, latency and quality
(see polyroute.replay.engine)."""
