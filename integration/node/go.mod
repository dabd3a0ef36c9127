module github.com/ioswarm/ioswarm/integration/node

go 1.24
