module example.com/kibaship-go-fixture

go 1.23.4
