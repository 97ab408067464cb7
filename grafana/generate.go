package grafana

//go:generate go run ../cmd/koel-dashboards -out dashboards
