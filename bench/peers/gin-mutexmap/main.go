// gin-mutexmap: the seed's other variant, a plain map behind a sync.RWMutex,
// as a benchmark peer (bench/peers/run.sh).
//
// The same program as ../gin-syncmap with the sync.Map swapped for
// map[string]string guarded by one RWMutex: readers share it, a writer holds
// it alone. Gin in release mode, no logger or other middleware. The API is
// the seed's:
//
//	POST /cache {"key":"k","value":"v"}  -> 200 {"message":"stored"}
//	GET  /cache/:key                     -> 200 {"key":"k","value":"v"}
//	                                        404 {"error":"key not found"}
//
// It listens on -addr (default 127.0.0.1:0) and prints
// "gin-mutexmap listening on http://ADDR (GOMAXPROCS N)" once it accepts
// connections. Builds offline: GO111MODULE=off GOPATH=/usr/share/gocode go build
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

// store is the map and the lock that guards it: Load takes it shared,
// Store exclusive. Nothing else touches m.
type store struct {
	mu sync.RWMutex
	m  map[string]string
}

func (s *store) Load(key string) (string, bool) {
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	return v, ok
}

func (s *store) Store(key, value string) {
	s.mu.Lock()
	s.m[key] = value
	s.mu.Unlock()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()

	st := &store{m: make(map[string]string)}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/cache", func(c *gin.Context) {
		var e entry
		if err := c.ShouldBindJSON(&e); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		st.Store(e.Key, e.Value)
		c.JSON(http.StatusOK, gin.H{"message": "stored"})
	})
	r.GET("/cache/:key", func(c *gin.Context) {
		key := c.Param("key")
		v, ok := st.Load(key)
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
	fmt.Printf("gin-mutexmap listening on http://%s (GOMAXPROCS %d)\n", ln.Addr(), runtime.GOMAXPROCS(0))
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, r))
}
