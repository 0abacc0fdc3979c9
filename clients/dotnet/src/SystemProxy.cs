using System;
using System.Net;

namespace CSFMSEJournalInterface
{
    /// <summary>
    /// The system proxy (<see cref="WebRequest.DefaultWebProxy"/>, read at each request, so
    /// the application's own setting is honoured) with the user's default credentials, without
    /// changing the process-wide proxy object that other code shares.
    /// </summary>
    internal sealed class SystemProxy : IWebProxy
    {
        private ICredentials _credentials;

        /// <summary>
        /// The credentials given to the proxy: those set here, else the system proxy's own,
        /// else the credentials of the user the application runs as.
        /// </summary>
        public ICredentials Credentials
        {
            get
            {
                if (_credentials != null)
                {
                    return _credentials;
                }
                IWebProxy system = WebRequest.DefaultWebProxy;
                ICredentials configured = system == null ? null : system.Credentials;
                return configured ?? CredentialCache.DefaultCredentials;
            }
            set
            {
                _credentials = value;
            }
        }

        /// <summary>The proxy the system would use for <paramref name="destination"/>.</summary>
        public Uri GetProxy(Uri destination)
        {
            IWebProxy system = WebRequest.DefaultWebProxy;
            return system == null ? destination : system.GetProxy(destination);
        }

        /// <summary>Whether the system proxy is bypassed for <paramref name="host"/>.</summary>
        public bool IsBypassed(Uri host)
        {
            IWebProxy system = WebRequest.DefaultWebProxy;
            return system == null || system.IsBypassed(host);
        }
    }
}
