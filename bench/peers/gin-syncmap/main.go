// gin-syncmap: the classic Go design cachette starts from, as a benchmark peer
// (bench/peers/run.sh).
//
// Gin in release mode, without the logger or any other middleware, and a
// sync.Map from key to value. The API is the seed's, byte for byte:
//
//	POST /cache {"key":"k","value":"v"}  -> 200 {"message":"stored"}
//	GET  /cache/:key                     -> 200 {"key":"k","value":"v"}
//	                                        404 {"error":"key not found"}
//
// A malformed body gets 400 {"error":"..."}. Values are JSON strings.
//
// It listens on -addr (default 127.0.0.1:0, a free loopback port) and prints
// "gin-syncmap listening on http://ADDR (GOMAXPROCS N)" once it accepts
// connections. GOMAXPROCS comes from the environment (run.sh sets it to the
// cores the process is pinned to). It builds offline from Debian's
// golang-github-gin-gonic-gin-dev in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"

	"github.com/gin-gonic/gin"
)

type entry struct {
	Key   string `json:"key" binding:"required"`
	Value string `json:"value"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()

	var store sync.Map

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/cache", func(c *gin.Context) {
		var e entry
		if err := c.ShouldBindJSON(&e); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		store.Store(e.Key, e.Value)
		c.JSON(http.StatusOK, gin.H{"message": "stored"})
	})
	r.GET("/cache/:key", func(c *gin.Context) {
		key := c.Param("key")
		v, ok := store.Load(key)
		if !ok {
			c.JSON(http.StatusNotFound, gin.H{"error": "key not found"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"key": key, "value": v})
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("gin-syncmap listening on http://%s (GOMAXPROCS %d)\n", ln.Addr(), runtime.GOMAXPROCS(0))
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, r))
}
