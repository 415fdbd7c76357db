# Everyday recipes. `just --list` shows them all.

# Build shipit (debug)
build:
    cargo build --workspace --locked

# Run the unit and integration tests (validators must be installed: `just install-tools`)
test:
    cargo test --workspace --locked

# Formatting and lints, as CI runs them
check:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Render every environment and the CI workflows into generated/ and .github/workflows
render-all:
    cargo run --locked --quiet -- render --all

# Fail with a diff when generated/ or .github/workflows is stale
render-check:
    cargo run --locked --quiet -- render --all --check

# Validate every environment's configuration
validate:
    cargo run --locked --quiet -- validate

# Run the independent validators (kubernetes-validate, hadolint, compose, nginx, promtool, actionlint, ...)
validate-generated:
    bash .ci/validate-generated .

# Install the validators and benchmark tools (Debian and Python packages)
install-tools:
    bash .ci/install-tools

# Benchmarks: shipit render (hyperfine), the calculator beside nginx (wrk), release builds, deploys (one host, several hosts)
bench:
    bash .ci/bench
    bash .ci/bench-calculator
    bash .ci/bench-build
    bash .ci/bench-release
    bash .ci/bench-deploy
    bash .ci/bench-hosts
    bash .ci/bench-day2
    bash .ci/bench-accessories
    bash .ci/bench-k8s

# Start the Kubernetes test cluster (v1.20.2, built once from Debian's source package) / stop it
k8s-up:
    bash .ci/k8s-cluster/up.sh

k8s-down:
    bash .ci/k8s-cluster/down.sh

# Make the base images the Dockerfiles need on an engine that cannot pull
offline-images:
    bash .ci/offline-images

# Make the deploy gateway's image (HAProxy + socat, FROM scratch) from Debian's packages
gateway-image:
    cargo run --locked --quiet -- image gateway

# Run the calculator service locally (pretty logs)
serve:
    LOG_FORMAT=pretty cargo run --release --locked -p calculator -- serve

# The calculator as a static binary for a FROM scratch image
calculator-static:
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -p calculator --target x86_64-unknown-linux-gnu

# Everything CI runs: install, fmt, clippy, render --check, validators, tests
ci:
    bash .ci/test

# Review changed snapshots after an intended template change
snapshots:
    cargo insta review || INSTA_UPDATE=always cargo test --test integration snapshots
