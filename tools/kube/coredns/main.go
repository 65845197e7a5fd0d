// Command coredns is the cluster DNS of the e2e suite's real test node: CoreDNS with only the
// plugins that node's Corefile uses. CoreDNS's own main (coredns.go) imports core/plugin, which
// compiles in every plugin; this one imports coremain and the plugins below (the kubernetes
// plugin brings in metadata, transfer and prometheus with it: `coredns -plugins` lists those too).
//
// The order in which the plugins handle a query is CoreDNS's, not this file's: it comes from
// dnsserver.Directives in the CoreDNS module. A Corefile that names a plugin missing here fails
// at start with "Unknown directive". There is deliberately no forward plugin: the node has no
// upstream resolver to forward to.
//
// tools/kube/build-binaries.sh copies this file into a scratch module and builds it.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() {
	coremain.Run()
}
