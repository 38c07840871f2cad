# Thin wrapper over CMake; the real build is CMakeLists.txt.
# make / make test / make demo / make bench / make asan / make format /
# make readme-config
BUILD ?= build

.PHONY: all test demo bench bench-quick asan format format-check readme-config fuzz fuzz-tables clean
all:
	.ci/build $(BUILD)
test:
	.ci/test
demo:
	.ci/demo
# The benchmarks (bench/README.md); BENCH_ARGS e.g. "--cost --scale".
bench: all
	$(BUILD)/chargeflow bench $(BENCH_ARGS)
bench-quick: all
	$(BUILD)/chargeflow bench --quick
asan:
	CF_BUILD_DIR=build-asan .ci/test -DCF_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
format: all
	cmake --build $(BUILD) --target format
format-check: all
	cmake --build $(BUILD) --target format-check
# Regenerates the README's configuration table from the code's table.
readme-config: all
	$(BUILD)/chargeflow run --help-config --markdown > $(BUILD)/config-table.md
	awk -v tbl=$(BUILD)/config-table.md ' \
	  /<!-- config-table:begin -->/ { print; while ((getline l < tbl) > 0) print l; skip=1; next } \
	  /<!-- config-table:end -->/ { skip=0 } !skip' README.md > README.md.new
	mv README.md.new README.md
fuzz:
	.ci/deps
	cmake -S . -B build-fuzz -DCF_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-fuzz --target fuzz_decode -j2
	mkdir -p build-fuzz/corpus
	build-fuzz/fuzz_decode -max_total_time=$${FUZZ_SECONDS:-600} -print_final_stats=1 build-fuzz/corpus tests/fuzz_corpus
# The table decoders (sites, users) the same way.
fuzz-tables:
	.ci/deps
	cmake -S . -B build-fuzz -DCF_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-fuzz --target fuzz_tables -j2
	mkdir -p build-fuzz/corpus-tables
	build-fuzz/fuzz_tables -max_total_time=$${FUZZ_SECONDS:-600} -print_final_stats=1 build-fuzz/corpus-tables tests/fuzz_corpus_tables
clean:
	rm -rf build build-asan build-fuzz
