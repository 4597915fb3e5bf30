"""The notebook wing: the IPython magics and the ipywidgets form, thin front ends over the API."""
