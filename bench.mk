# `make bench`: the performance benchmark (scripts/bench, docs/performance.md).
# Included by the main Makefile; also works alone: `make -f bench.mk bench`.
#
# Variables (passed through to the benchmark):
#   BENCH_LATENCY_MS=200        token-endpoint latency injected by the fake providers
#   BENCH_PROVIDERS=10,100,1000 provider counts of the cycle benchmark
#   BENCH_FOOTPRINT_PROVIDERS=1000  providers of the peak-RSS run
#   MAX_CONCURRENCY=8           the function's own setting
#   BENCH_WORKERS=4             concurrent workers of BenchmarkFanOut (from the environment)
#   BENCH_COLD_STARTS=50        cold starts of each kind of consumer (BenchmarkAlternative)
#   BENCH_CONSUMERS=10,100,1000 consumer counts of BenchmarkAlternative
#   BENCH_REGISTRY_PROVIDERS=1000,10000  providers in the registry object (BenchmarkRegistry)
#   BENCH_PUBLISH_PUTS=3        puts timed from tokenctl providers put to published (BenchmarkRegistryPublish)
#   BENCH_REVOCATION_CONSUMERS=10,100  consumers recovering from a revocation (BenchmarkRevocation)

BENCH_LATENCY_MS          ?= 200
BENCH_PROVIDERS           ?= 10,100,1000
BENCH_FOOTPRINT_PROVIDERS ?= 1000
BENCH_COLD_STARTS         ?= 50
BENCH_CONSUMERS           ?= 10,100,1000
BENCH_REGISTRY_PROVIDERS  ?= 1000,10000
BENCH_PUBLISH_PUTS        ?= 3
BENCH_REVOCATION_CONSUMERS ?= 10,100

.PHONY: bench
bench: ## benchmark against LocalStack: cycle time vs. bound, idle/busy AWS calls, binary size, RSS, init; the registry's reads and put to published; throttles under a PutParameter quota; the product vs. x/oauth2 consumers; consumers recovering from a revocation (~10 min)
	BENCH_LATENCY_MS=$(BENCH_LATENCY_MS) BENCH_PROVIDERS=$(BENCH_PROVIDERS) \
	  BENCH_FOOTPRINT_PROVIDERS=$(BENCH_FOOTPRINT_PROVIDERS) BENCH_COLD_STARTS=$(BENCH_COLD_STARTS) \
	  BENCH_CONSUMERS=$(BENCH_CONSUMERS) BENCH_REGISTRY_PROVIDERS=$(BENCH_REGISTRY_PROVIDERS) \
	  BENCH_PUBLISH_PUTS=$(BENCH_PUBLISH_PUTS) BENCH_REVOCATION_CONSUMERS=$(BENCH_REVOCATION_CONSUMERS) \
	  GO=$(or $(GO),go) scripts/bench

.PHONY: bench-large
bench-large: ## the benchmark at 10,000 providers: busy cycle, idle runs, RSS and init at that size; the policy simulated at 10,000 and 100,000 (~25 min)
	BENCH_SCALE=1 BENCH_LATENCY_MS=$(BENCH_LATENCY_MS) BENCH_PROVIDERS=10000 BENCH_FOOTPRINT_PROVIDERS=10000 \
	  BENCH_COLD_STARTS=$(BENCH_COLD_STARTS) BENCH_CONSUMERS=$(BENCH_CONSUMERS) \
	  BENCH_REGISTRY_PROVIDERS=$(BENCH_REGISTRY_PROVIDERS) BENCH_PUBLISH_PUTS=$(BENCH_PUBLISH_PUTS) \
	  BENCH_REVOCATION_CONSUMERS=$(BENCH_REVOCATION_CONSUMERS) BENCH_TIMEOUT=60m GO=$(or $(GO),go) scripts/bench
