"""What the API shows of the rows it reads: response models and the queries' columns,
shared by the routes that list, show and act on them."""
