"""HTTP services: `lymph.web.interfaces.WebServiceInterface`."""
