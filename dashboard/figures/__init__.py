"""Pure functions that turn rows from the query layer into Plotly figures."""
