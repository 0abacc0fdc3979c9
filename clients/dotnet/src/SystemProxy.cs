using System;
using System.Net;

namespace CSFMSEJournalInterface
{
    /// <summary>
    /// The system proxy (<see cref="WebRequest.DefaultWebProxy"/>, read at each request, so
    /// the application's own setting is honoured), without changing the process-wide proxy
    /// object that other code shares.
    /// </summary>
    /// <remarks>
    /// The proxy is given the credentials .NET Framework's <see cref="HttpWebRequest"/> would
    /// give it: those configured for the system proxy, which are none unless the application's
    /// configuration says <c>&lt;defaultProxy useDefaultCredentials="true"&gt;</c>. The signed-in
    /// user's credentials are not sent to whatever proxy the system (or WPAD, which anyone on
    /// the network may answer) names unless the application asks for it, by configuration or
    /// by setting <see cref="Credentials"/> (for instance to
    /// <see cref="CredentialCache.DefaultCredentials"/>).
    /// </remarks>
    internal sealed class SystemProxy : IWebProxy
    {
        private ICredentials _credentials;

        /// <summary>
        /// The credentials given to the proxy: those set here, else the system proxy's own
        /// (as configured for the application), else none.
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
                return system == null ? null : system.Credentials;
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
