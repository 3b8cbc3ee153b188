# Sourced by scripts/node.sh and .ci/run: makes sure the `node` first on PATH can run the project's
# tools (wrangler, Vitest, @langchain/openai need Node >= 22.12). When it cannot, installs the Node
# that .nvmrc names from the npm registry's binary package (node-<os>-<arch>) into .cache/node in
# the checkout, and puts it first on PATH. Nothing is downloaded from anywhere but the registry.
_rag_guard_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_rag_guard_node_ok() {
  # Node >= 22.12 (the oldest Node the tools accept).
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) ? 0 : 1)' >/dev/null 2>&1
}

_rag_guard_ensure_node() {
  _rag_guard_node_ok && return 0
  local want os arch bin
  want="$(tr -d '[:space:]' <"$_rag_guard_root/.nvmrc")"
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) os="" ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) arch="" ;; esac
  bin="$_rag_guard_root/.cache/node/node_modules/node-$os-$arch/bin"
  if [ ! -x "$bin/node" ]; then
    local have
    have="$(node --version 2>/dev/null || echo 'no node')"
    if [ -z "$os" ] || [ -z "$arch" ] || ! command -v npm >/dev/null 2>&1; then
      echo "rag-guard: needs Node >= 22.12 (found $have); install Node $want (nvm install $want, or nodejs.org) and run again." >&2
      return 1
    fi
    echo "rag-guard: Node $have is older than 22.12; installing Node $want from the npm registry (node-$os-$arch) into .cache/node…" >&2
    if ! npm install --prefix "$_rag_guard_root/.cache/node" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-$os-$arch@$want" >&2 || [ ! -x "$bin/node" ]; then
      echo "rag-guard: could not install node-$os-$arch@$want; install Node $want (nvm install $want, or nodejs.org) and run again." >&2
      return 1
    fi
  fi
  export PATH="$bin:$PATH"
  _rag_guard_node_ok
}

_rag_guard_ensure_node
