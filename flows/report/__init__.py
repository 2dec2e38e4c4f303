"""The run report, without Prefect: sections (`section`), the HTML page and its figures (`html`,
`plots`), why each stage reran (`history`) and rejected examples (`rejections`)."""
